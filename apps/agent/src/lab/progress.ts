/** Prints one line per finished step with the time since the command started: `[  1.42s] started agent node1 (pid 4242)`. */
export class Progress {
  private readonly started = performance.now();

  constructor(private readonly write: (line: string) => void = () => {}) {}

  line(text: string): void {
    this.write(`[${((performance.now() - this.started) / 1000).toFixed(2).padStart(6)}s] ${text}\n`);
  }

  /** Runs a step and reports it when done; the label may depend on the step's result. */
  async step<T>(label: string | ((result: T) => string), task: () => Promise<T>): Promise<T> {
    const result = await task();
    this.line(typeof label === "string" ? label : label(result));
    return result;
  }
}
