'use strict'
// Independent check of 837 files written by services/billing/internal/x12 (Write837).
// Usage: node check.js FILE...
// Parses each file with node-x12's X12Parser in strict mode (which throws on a wrong ISA
// length, envelope outside a group, or SE/GE/IEA counts and control numbers that do not match)
// and prints one JSON object per file on its own line. Exits 1 when any file fails to parse.
const fs = require('fs')
const { X12Parser } = require('node-x12')

let failed = false
for (const file of process.argv.slice(2)) {
  const result = { file, ok: false }
  try {
    const edi = fs.readFileSync(file, 'utf8')
    const interchange = new X12Parser(true).parse(edi)
    if (interchange.interchanges !== undefined) {
      throw new Error('more than one interchange in one file')
    }
    let segments = 2 // ISA, IEA
    let claims = 0
    let transactions = 0
    let seCountOk = true
    for (const group of interchange.functionalGroups) {
      segments += 2 // GS, GE
      for (const tx of group.transactions) {
        transactions++
        segments += tx.segments.length + 2 // ST, SE
        if (parseInt(tx.trailer.valueOf(1), 10) !== tx.segments.length + 2) seCountOk = false
        if (tx.trailer.valueOf(2) !== tx.header.valueOf(2)) seCountOk = false
        claims += tx.segments.filter(s => s.tag === 'CLM').length
      }
    }
    Object.assign(result, {
      ok: seCountOk,
      segments,
      groups: interchange.functionalGroups.length,
      transactions,
      st_se_ok: seCountOk,
      claims
    })
    if (!seCountOk) failed = true
  } catch (err) {
    result.error = String(err && err.message ? err.message : err)
    failed = true
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}
process.exit(failed ? 1 : 0)
