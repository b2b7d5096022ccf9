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
import { Readable, pipeline } from 'node:stream';
import { stringify, type Stringifier } from 'csv-stringify';

const FORMULA_START = /^[=+\-@\t\r]/;

/** The cell as a spreadsheet must show it: text, never a formula. */
export function csvCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/**
 * The CSV of `rows` (each cell neutralised here) under `header`, as a stream
 * to send: rows are pulled only as fast as the client reads (stream.pipeline
 * from the iterable), and when the stream is destroyed (the client went
 * away) the iterable is returned, so its `finally` runs and nothing waits.
 * `onError` hears a failure of the iterable part-way (the stream is then
 * destroyed with it), not a client that left.
 */
export function csvExport(header: readonly string[], rows: AsyncIterable<readonly string[]> | Iterable<readonly string[]>, onError: (err: Error) => void): Stringifier {
  const csv = stringify({ header: true, columns: header.map((h) => ({ key: h, header: csvCell(h) })), record_delimiter: 'windows', quoted_match: /[\r\n]/ });
  async function* records() {
    let waiting = false; // at the yield: an error thrown in there is the stream's destruction, not the rows'
    try {
      for await (const cells of rows) {
        waiting = true;
        yield Object.fromEntries(header.map((h, i) => [h, csvCell(cells[i] ?? '')]));
        waiting = false;
      }
    } catch (err) {
      if (!waiting) onError(err as Error);
      throw err;
    }
  }
  // The pipeline's own error is the rows' (reported above) or the client leaving (nothing to report).
  pipeline(Readable.from(records()), csv, () => {});
  return csv;
}
