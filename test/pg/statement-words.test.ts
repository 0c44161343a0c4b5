import { describe, expect, it } from 'vitest';
import { isListen, isUnlisten } from '../../src/pg/protocol.js';

/**
 * isListen and isUnlisten test the statement's first letter before their regular expressions: they
 * must answer as the expression alone does, for any statement (the letter only spares the
 * expression where it cannot match).
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
  // What PostgreSQL's word is, as a regular expression alone would tell it.
  it.each([
    ['LISTEN', isListen, /^\s*LISTEN\s/i],
    ['UNLISTEN', isUnlisten, /^\s*UNLISTEN\s/i],
  ] as const)('tells %s as its regular expression does', (_name, tells, pattern) => {
    for (const text of STATEMENTS) expect([text, tells(text)]).toEqual([text, pattern.test(text)]);
    // Both answers occur, so the comparison is not vacuous.
    expect(new Set(STATEMENTS.map((text) => pattern.test(text))).size).toBe(2);
  });
});
