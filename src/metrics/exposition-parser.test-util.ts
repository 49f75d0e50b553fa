/**
 * A strict reader of the Prometheus text exposition format 0.0.4 (prometheus.io "Exposition formats"), for
 * tests: it checks what Prometheus' own parser checks (metric and label names, label value escapes, float
 * values, TYPE before samples, one TYPE per family, no duplicate series) and returns the samples.
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Exposition {
  types: Map<string, string>
  samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/

function parseValue(text: string, line: number): number {
  if (/^[+-]?inf$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity
  if (/^nan$/i.test(text)) return NaN
  if (!FLOAT.test(text)) throw new Error(`line ${line}: bad value "${text}"`)
  return Number(text)
}

/** The family a sample belongs to: histogram/summary samples carry _bucket, _sum or _count suffixes. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length)
      const t = types.get(base)
      if (t === 'histogram' || t === 'summary') return base
    }
  }
  return undefined
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  const seen = new Set<string>()
  const lines = text.split('\n')
  if (lines.at(-1) !== '') throw new Error('exposition must end with a newline')
  lines.forEach((raw, idx) => {
    const n = idx + 1
    if (raw === '') return
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw)
      if (m === null) return // a plain comment
      const [, kind, name = '', rest = ''] = m
      if (!METRIC_NAME.test(name)) throw new Error(`line ${n}: bad metric name "${name}"`)
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`line ${n}: bad type "${rest}"`)
        if (types.has(name)) throw new Error(`line ${n}: second TYPE for ${name}`)
        if (samples.some((s) => familyOf(s.name, types) === name))
          throw new Error(`line ${n}: TYPE after samples of ${name}`)
        types.set(name, rest)
      } else if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`line ${n}: bad escape in HELP`)
      return
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)(?: (-?\d+))?$/.exec(raw)
    if (m === null) throw new Error(`line ${n}: not a sample: ${JSON.stringify(raw)}`)
    const [, name = '', labelText, valueText = ''] = m
    const labels: Record<string, string> = {}
    if (labelText !== undefined) {
      let rest = labelText.slice(1, -1)
      while (rest !== '') {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest)
        if (lm === null) throw new Error(`line ${n}: bad labels ${labelText}`)
        const [all, lname = '', lvalue = '', comma] = lm
        if (!LABEL_NAME.test(lname) || lname.startsWith('__')) throw new Error(`line ${n}: label ${lname}`)
        if (lname in labels) throw new Error(`line ${n}: label ${lname} twice`)
        labels[lname] = lvalue.replace(/\\(["\\n])/g, (_s, c: string) => (c === 'n' ? '\n' : c))
        rest = rest.slice(all.length)
        if (comma === '' && rest !== '') throw new Error(`line ${n}: expected "," in ${labelText}`)
      }
    }
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) throw new Error(`line ${n}: duplicate series ${key}`)
    seen.add(key)
    samples.push({ name, labels, value: parseValue(valueText, n) })
  })
  return { types, samples }
}

/** The value of one series, undefined when absent. */
export function sampleValue(
  e: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort())
  return e.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)
    ?.value
}
