import { describe, expect, it } from 'vitest';
import { LISTEN, matchesStatement, UNLISTEN } from '../../src/pg/protocol.js';

/**
 * The first-letter test in front of the LISTEN and UNLISTEN expressions must answer as the
 * expression alone does, for any statement: it only spares the expression where that cannot match.
 */
const STATEMENTS = [
  'LISTEN a',
  'listen a',
  '  \n\tListen a',
  '\u00a0LISTEN a', // a blank outside ASCII: `\s` takes it in
  '\u2028listen a',
  '\ufeffUNLISTEN *',
  'UNLISTEN *',
  ' unlisten a',
  'LISTENa',
  'LISTEN',
  'SELECT 1',
  "SELECT 'LISTEN x'",
  '/* c */ LISTEN a',
  'L',
  'l ',
  'U',
  '',
  '   ',
  '\r\n\f\vLISTEN a',
  'Ｌisten a', // a full-width letter is not an L
];

describe('pg › the first word of a statement', () => {
  it.each([
    ['LISTEN', 0x6c, LISTEN],
    ['UNLISTEN', 0x75, UNLISTEN],
  ] as const)('tells %s as its regular expression does', (_name, letter, pattern) => {
    for (const text of STATEMENTS) expect([text, matchesStatement(text, letter, pattern)]).toEqual([text, pattern.test(text)]);
    // Both answers occur, so the comparison is not vacuous.
    expect(new Set(STATEMENTS.map((text) => pattern.test(text))).size).toBe(2);
  });
});
