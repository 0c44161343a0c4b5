/**
 * A process's command line as reports show it: credentials left out. Commands carry connection
 * strings (`postgres://app:secret@db/app`, `redis://:secret@cache`) and password flags
 * (`--password=…`, `PGPASSWORD=…` after `env`), and a report is an artifact people share.
 */
export function commandLine(argv: readonly string[]): string[] {
  return argv.map(redactArgument);
}

const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s]*)@/gi;
const SECRET_ASSIGNMENT = /([a-z_-]*(?:password|passwd|pwd|pass|secret|token|api[-_]?key)=)[^&\s]*/gi;

export function redactArgument(argument: string): string {
  return argument
    .replace(URL_CREDENTIALS, (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return colon < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:***@`;
    })
    .replace(SECRET_ASSIGNMENT, '$1***');
}
