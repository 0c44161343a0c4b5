/**
 * Text that may hold credentials, as leakwatch writes it anywhere (a report's command lines, a pool
 * name as a metric label): connection strings (`postgres://app:secret@db/app`,
 * `redis://:secret@cache`) keep their user and lose their password, and `password=`, `secret=`,
 * `token=`, `api-key=` style assignments (`--password=…`, `PGPASSWORD=…`, a libpq conninfo) lose
 * their value.
 */
export function withoutCredentials(text: string): string {
  return text
    .replace(URL_CREDENTIALS, (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return colon < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:***@`;
    })
    .replace(SECRET_ASSIGNMENT, '$1***');
}

const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s]*)@/gi;
const SECRET_ASSIGNMENT = /([a-z_-]*(?:password|passwd|pwd|pass|secret|token|api[-_]?key)=)[^&\s]*/gi;
