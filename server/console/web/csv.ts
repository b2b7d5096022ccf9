/**
 * The PC list as CSV (RFC 4180, one header row), streamed: rows are
 * written as the store's pages arrive, so an export of 10,000 PCs never
 * sits whole in memory. Quoting is csv-stringify's (a cell with a line
 * break is quoted too, so no cell can start a row of its own).
 *
 * Security considerations: a cell that a spreadsheet would read as a
 * formula (one starting with = + - @, or a tab or carriage return that
 * hides one) gets a leading apostrophe (OWASP's CSV injection defence), so a
 * PC or user named `=HYPERLINK(...)` opens as text.
 */
import { stringify, type Stringifier } from 'csv-stringify';

const FORMULA_START = /^[=+\-@\t\r]/;

/** The cell as a spreadsheet must show it: text, never a formula. */
export function csvCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/** A CSV stream with the given header; write rows of strings to it (each cell neutralised here). */
export function csvStream(header: readonly string[]): Stringifier & { row(cells: readonly string[]): boolean } {
  const stream = stringify({ header: true, columns: header.map((h) => ({ key: h, header: csvCell(h) })), record_delimiter: 'windows', quoted_match: /[\r\n]/ }) as Stringifier & { row(cells: readonly string[]): boolean };
  stream.row = (cells) => stream.write(Object.fromEntries(header.map((h, i) => [h, csvCell(cells[i] ?? '')])));
  return stream;
}
