import { describe, expect, it } from 'vitest'
import { A, Anomalies } from '../decode/anomalies.js'

describe('anomalies', () => {
  it('counts by id and reports by name', () => {
    const a = new Anomalies()
    a.inc(A.truncated_ipv4_header)
    a.inc(A.truncated_ipv4_header)
    expect(a.toObject()).toEqual({ truncated_ipv4_header: 2 })
  })
})
