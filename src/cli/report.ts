import { readFileSync } from 'node:fs';
import type { Report } from '../report/json.js';
import { writeOutputFile } from '../report/output-file.js';
import { formatReport, useColour } from '../report/text.js';
import { reportProblems } from '../report/validate.js';
import { VERSION } from '../version.js';
import { checkOutputs, formatOutput, UsageError, type OutputFlag } from './run.js';

export const REPORT_USAGE = `Usage: leakwatch report REPORT.json [--html FILE.html] [--summary-md FILE.md]

Reads a JSON report (from leakwatch run --report, LEAKWATCH_REPORT or start().report()), checks
it against the report's schema, and writes it again in other forms. With neither option it prints
the readable summary.

Options:
  --html FILE.html       write the HTML report: one self-contained page with a timeline and the
                         root cause of each leak
  --summary-md FILE.md   write a short markdown summary (for a CI job summary)
  -h, --help             show this help`;

interface ReportOptions {
  file: string;
  html?: string;
  summaryMd?: string;
}

function parseReportArgs(args: string[]): ReportOptions | 'help' {
  let file: string | undefined;
  const options: Omit<ReportOptions, 'file'> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '-h' || flag === '--help') return 'help';
    if (flag === '--html' || flag === '--summary-md') {
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`${flag} needs a file; see leakwatch report --help.`);
      if (flag === '--html') options.html = value;
      else options.summaryMd = value;
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown option ${arg}; see leakwatch report --help.`);
    } else if (file === undefined) {
      file = arg;
    } else {
      throw new UsageError(`one report at a time: ${JSON.stringify(file)} and ${JSON.stringify(arg)} were given; see leakwatch report --help.`);
    }
  }
  if (file === undefined) throw new UsageError('no report to read; usage: leakwatch report REPORT.json [--html FILE.html] [--summary-md FILE.md]');
  return { file, ...options };
}

/** The report in `file`, or a UsageError that says what is wrong with it. */
export function readReport(file: string): Report {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); give the JSON file that leakwatch run --report wrote.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not JSON (${(error as Error).message}); give the JSON file that leakwatch run --report wrote.`);
  }
  const version = (value as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (typeof version === 'number' && version !== 1) {
    throw new UsageError(`${file} is a report of schemaVersion ${version}, and leakwatch ${VERSION} reads version 1; use the leakwatch that wrote it.`);
  }
  const problems = reportProblems(value);
  if (problems.length > 0) throw new UsageError(`${file} is not a leakwatch report: ${problems.join('; ')}.`);
  return value as Report;
}

/** `leakwatch report`: renders an existing JSON report; resolves with the exit status. */
export async function report(args: string[], io = { stdout: process.stdout }): Promise<number> {
  const options = parseReportArgs(args);
  if (options === 'help') {
    io.stdout.write(REPORT_USAGE + '\n');
    return 0;
  }
  const outputs: Array<[OutputFlag, string]> = [];
  if (options.html !== undefined) outputs.push(['--html', options.html]);
  if (options.summaryMd !== undefined) outputs.push(['--summary-md', options.summaryMd]);
  checkOutputs(outputs);
  const parsed = readReport(options.file);
  if (outputs.length === 0) {
    io.stdout.write(formatReport(parsed, { colour: useColour(io.stdout as { isTTY?: boolean }) }) + '\n');
    return 0;
  }
  for (const [flag, file] of outputs) writeOutputFile(file, formatOutput(flag, parsed, options.html));
  return 0;
}
