/**
 * Prometheus metrics (text exposition format 0.0.4), kept by hand: requests
 * by method and status, latency histogram by method, bytes in and out, and
 * gauges read at scrape time (open sessions, WebDAV locks, the gate, the
 * version). Served to administrators only: the counts cover every user.
 */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A label value, escaped for the text format. */
export function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, { buckets: number[]; sum: number; count: number }>();
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(private readonly gauges: () => Promise<Record<string, { help: string; values: Record<string, number> }>>) {}

  observe(method: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    const key = `${method}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.latency.get(method);
    if (!h) this.latency.set(method, (h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) h.buckets[i]!++;
    });
    h.sum += seconds;
    h.count++;
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
  }

  async render(): Promise<string> {
    const out: string[] = [];
    out.push('# HELP mydoc_http_requests_total HTTP requests by method and status.', '# TYPE mydoc_http_requests_total counter');
    for (const [key, n] of this.requests) {
      const [method, status] = key.split('\u0000');
      out.push(`mydoc_http_requests_total{method="${label(method!)}",status="${status}"} ${n}`);
    }
    out.push('# HELP mydoc_http_request_duration_seconds Request latency by method.', '# TYPE mydoc_http_request_duration_seconds histogram');
    for (const [method, h] of this.latency) {
      const m = label(method);
      BUCKETS.forEach((b, i) => out.push(`mydoc_http_request_duration_seconds_bucket{method="${m}",le="${b}"} ${h.buckets[i]}`));
      out.push(`mydoc_http_request_duration_seconds_bucket{method="${m}",le="+Inf"} ${h.count}`);
      out.push(`mydoc_http_request_duration_seconds_sum{method="${m}"} ${h.sum}`, `mydoc_http_request_duration_seconds_count{method="${m}"} ${h.count}`);
    }
    out.push('# HELP mydoc_http_bytes_in_total Request body bytes received.', '# TYPE mydoc_http_bytes_in_total counter', `mydoc_http_bytes_in_total ${this.bytesIn}`);
    out.push('# HELP mydoc_http_bytes_out_total Response body bytes sent.', '# TYPE mydoc_http_bytes_out_total counter', `mydoc_http_bytes_out_total ${this.bytesOut}`);
    for (const [name, g] of Object.entries(await this.gauges())) {
      out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
      for (const [labels, v] of Object.entries(g.values)) out.push(`${name}${labels} ${v}`);
    }
    return out.join('\n') + '\n';
  }
}
