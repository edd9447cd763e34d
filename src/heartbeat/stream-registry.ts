/** What the registry needs of a stream session. */
export interface RegisteredStream {
  readonly agentId: string;
  readonly peer: string;
  terminate(code: number, details: string): void;
}

/** The heartbeat streams open on this replica, by agent and by connection. */
export class StreamRegistry<S extends RegisteredStream = RegisteredStream> {
  readonly #byAgent = new Map<string, Set<S>>();
  readonly #byPeer = new Map<string, Set<S>>();
  readonly #closing = new Set<Promise<unknown>>();

  add(stream: S): void {
    addTo(this.#byAgent, stream.agentId, stream);
    addTo(this.#byPeer, stream.peer, stream);
  }

  remove(stream: S): void {
    removeFrom(this.#byAgent, stream.agentId, stream);
    removeFrom(this.#byPeer, stream.peer, stream);
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byAgent.values()) n += set.size;
    return n;
  }

  agentIds(): string[] {
    return [...this.#byAgent.keys()];
  }

  forAgent(agentId: string): S[] {
    return [...(this.#byAgent.get(agentId) ?? [])];
  }

  forPeer(peer: string): S[] {
    return [...(this.#byPeer.get(peer) ?? [])];
  }

  all(): S[] {
    return [...this.#byAgent.values()].flatMap((set) => [...set]);
  }

  /** Tracks close-time work (marking offline) so shutdown can wait for it. */
  trackClosing(work: Promise<unknown>): void {
    this.#closing.add(work);
    void work.finally(() => this.#closing.delete(work));
  }

  async closingSettled(): Promise<void> {
    await Promise.allSettled([...this.#closing]);
  }
}

function addTo<S>(map: Map<string, Set<S>>, key: string, value: S): void {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}

function removeFrom<S>(map: Map<string, Set<S>>, key: string, value: S): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
