import type { Ledger } from '../../src/core/ledger.js';
import { buildReport, type Report } from '../../src/report/json.js';

/** The report of the in-process ledger now, as `leakwatch run` would write it. */
export function reportOf(ledger: Ledger): Report {
  return buildReport(ledger, ledger.now());
}
