/**
 * The application catalogue as RFC 6759 options records (§5.1 applicationName, applicationDescription,
 * applicationCategoryName; template 290, scope applicationId), so a collector can name the applicationIds
 * it receives: sent once the template is added, and again after every round of templates the exporter sends
 * later (template refresh on UDP, a new transport session), as RFC 7011 §8.1 asks of options data that
 * describes the data.
 *
 * One thread: the `app` field group (./app.ts) sends it. N metering workers: the main thread's record merger
 * (src/probe/workers/record-relay.ts) sends it on the one real exporter, and drops the workers' copies.
 */
import { CATALOGUE, type AppEntry } from '../../appid/catalogue.js'
import type { IpfixExporter } from '../../ipfix/exporter.js'
import { Template } from '../../ipfix/template.js'

export const APP_OPTIONS_TEMPLATE_ID = 290
/** RFC 6759 Classification Engine ID 13 (PANA-L7): the applicationIds of catalogue entries. */
export const ENGINE_PANA_L7 = 13

/** The catalogue's options template. */
export function appCatalogueTemplate(): Template {
  return Template.fromNames(
    APP_OPTIONS_TEMPLATE_ID,
    [['applicationId', 4], ['applicationName'], ['applicationDescription'], ['applicationCategoryName']],
    1,
  )
}

export class AppCatalogueRecords {
  /** exporter.stats.templateSends when last looked at (0: no template round sent yet). */
  private seenTemplateSends = 0

  constructor(
    private readonly exporter: IpfixExporter,
    private readonly template: Template,
    private readonly entries: readonly AppEntry[] = CATALOGUE,
  ) {}

  /** Adds the template (unless added already) and sends the catalogue: the first round of templates carries it. */
  start(addTemplate = true): void {
    if (addTemplate) this.exporter.addTemplate(this.template)
    this.send()
  }

  /** The exporter sent its templates again since the last call: send the catalogue after them. */
  followTemplates(): void {
    const sends = this.exporter.stats.templateSends
    if (sends === this.seenTemplateSends) return
    if (this.seenTemplateSends > 0) this.send()
    this.seenTemplateSends = sends
  }

  private send(): void {
    const ex = this.exporter
    const t = this.template
    for (const e of this.entries) {
      const w = ex.beginRecord(
        t,
        4 + 3 * 3 + e.name.length + e.description.length * 3 + e.category.length + 16,
      )
      w.u8(ENGINE_PANA_L7)
      w.u8(e.id >>> 16)
      w.u16(e.id & 0xffff)
      w.string(e.name)
      w.string(e.description)
      w.string(e.category)
      ex.endRecord()
    }
  }
}
