// Request metrics in Prometheus' text exposition format (version 0.0.4). Recording a request is a
// map lookup and a few additions; the text is only built when /metrics is scraped. Labels come from
// route patterns, a fixed set of methods and status codes, so the number of series stays bounded
// whatever paths clients send.

/** Upper bounds of the duration histogram, in seconds: manifest reads to multi-gigabyte uploads. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const;

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

interface RequestSeries {
  labels: string;
  count: number;
  sum: number;
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  buckets: number[];
}

interface ByteSeries {
  labels: string;
  received: number;
  sent: number;
}

/** One finished request as the metrics count it. */
export interface ObservedRequest {
  method: string;
  /** The route pattern, never the path a client sent. */
  route: string;
  status: number;
  seconds: number;
  /** Bytes read and written on the connection for this request, headers included. */
  bytesIn: number;
  bytesOut: number;
}

/** A label value as the exposition format wants it: backslash, quote and newline escaped. */
function labelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (ch) => (ch === "\n" ? "\\n" : `\\${ch}`));
}

export class Metrics {
  private readonly requests = new Map<string, RequestSeries>();
  private readonly bytes = new Map<string, ByteSeries>();
  private readonly startSeconds = Math.floor(Date.now() / 1000);
  /** Requests being served now. */
  inFlight = 0;
  /** Upload requests (POST/PATCH/PUT under …/blobs/uploads) being served now. */
  uploadsInFlight = 0;

  /** Records one finished (or abandoned) request. */
  observe(r: ObservedRequest): void {
    const { method, route, status, seconds, bytesIn, bytesOut } = r;
    const m = METHODS.has(method) ? method : "OTHER";
    const key = `${m} ${status} ${route}`;
    let s = this.requests.get(key);
    if (!s) {
      s = { labels: `method="${m}",route="${labelValue(route)}",status="${status}"`, count: 0, sum: 0, buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0) };
      this.requests.set(key, s);
    }
    s.count++;
    s.sum += seconds;
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
    s.buckets[i]!++;
    let b = this.bytes.get(route);
    if (!b) {
      b = { labels: `route="${labelValue(route)}"`, received: 0, sent: 0 };
      this.bytes.set(route, b);
    }
    b.received += bytesIn;
    b.sent += bytesOut;
  }

  /** The exposition text: request counters and histograms, bytes, in-flight gauges, process figures. */
  render(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const requests = [...this.requests.values()];
    family("corral_registry_http_requests_total", "counter", "HTTP requests served, by method, route pattern and status.");
    for (const s of requests) out.push(`corral_registry_http_requests_total{${s.labels}} ${s.count}`);
    family("corral_registry_http_request_duration_seconds", "histogram", "Time from the request's arrival to the last byte of its response.");
    for (const s of requests) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += s.buckets[i]!;
        out.push(`corral_registry_http_request_duration_seconds_bucket{${s.labels},le="${le}"} ${cumulative}`);
      });
      out.push(`corral_registry_http_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}`);
      out.push(`corral_registry_http_request_duration_seconds_sum{${s.labels}} ${s.sum}`);
      out.push(`corral_registry_http_request_duration_seconds_count{${s.labels}} ${s.count}`);
    }
    const bytes = [...this.bytes.values()];
    family("corral_registry_http_received_bytes_total", "counter", "Bytes received on the connection while serving requests (headers and bodies), by route pattern.");
    for (const b of bytes) out.push(`corral_registry_http_received_bytes_total{${b.labels}} ${b.received}`);
    family("corral_registry_http_sent_bytes_total", "counter", "Bytes sent in responses (headers and bodies), by route pattern.");
    for (const b of bytes) out.push(`corral_registry_http_sent_bytes_total{${b.labels}} ${b.sent}`);
    family("corral_registry_http_requests_in_flight", "gauge", "Requests being served now.");
    out.push(`corral_registry_http_requests_in_flight ${this.inFlight}`);
    family("corral_registry_uploads_in_flight", "gauge", "Blob upload requests (POST, PATCH, PUT on an upload session) being served now.");
    out.push(`corral_registry_uploads_in_flight ${this.uploadsInFlight}`);
    const cpu = process.cpuUsage();
    family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
    out.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
    const memory = process.memoryUsage();
    family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.push(`process_resident_memory_bytes ${memory.rss}`);
    family("nodejs_heap_size_used_bytes", "gauge", "JavaScript heap in use, in bytes.");
    out.push(`nodejs_heap_size_used_bytes ${memory.heapUsed}`);
    family("nodejs_heap_size_total_bytes", "gauge", "JavaScript heap reserved, in bytes.");
    out.push(`nodejs_heap_size_total_bytes ${memory.heapTotal}`);
    family("nodejs_external_memory_bytes", "gauge", "Memory outside the JavaScript heap held by JavaScript objects (buffers, and the embedded database's WebAssembly memory), in bytes.");
    out.push(`nodejs_external_memory_bytes ${memory.external}`);
    family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
    out.push(`process_start_time_seconds ${this.startSeconds}`);
    return out.join("\n") + "\n";
  }
}

/** The content type Prometheus expects for the text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
