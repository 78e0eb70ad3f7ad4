/** The part of autocannon's programmatic API the REST scenarios use (the package ships no types). */
declare module 'autocannon' {
  interface RequestData {
    method?: string;
    path?: string;
    headers: Record<string, string>;
    body?: string | Buffer;
  }

  interface RequestSpec {
    /** Called before every send of this request (per connection): what to send this time. */
    setupRequest?: (request: RequestData, context: Record<string, unknown>) => RequestData;
  }

  interface AutocannonOptions {
    url: string;
    connections?: number;
    duration?: number;
    method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
    headers?: Record<string, string>;
    body?: string;
    timeout?: number;
    /** Sent in turn by each connection (instead of one fixed request). */
    requests?: RequestSpec[];
  }

  interface Stats {
    average: number;
    mean: number;
    p50: number;
    p99: number;
    max: number;
    total: number;
  }

  interface AutocannonResult {
    /** `sent`: requests written, answered or not (autocannon drops those in flight when it stops). */
    requests: Stats & { sent: number };
    latency: Stats;
    errors: number;
    timeouts: number;
    non2xx: number;
    duration: number;
    '2xx': number;
  }

  function autocannon(options: AutocannonOptions): Promise<AutocannonResult>;
  export default autocannon;
}
