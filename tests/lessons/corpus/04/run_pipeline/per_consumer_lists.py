# expect: full
# why: each consumer keeps its own result list (no shared list, no lock), joined at the end
def run_pipeline(sources, work, consumers, capacity=8):
    """Send every item of every source through work() using len(sources) producers and
    `consumers` consumer threads around a bounded queue.Queue; return the results."""
    if isinstance(consumers, bool) or not isinstance(consumers, int) or consumers < 1:
        raise ValueError(f"consumers must be an int >= 1, got {consumers!r}")
    done = object()
    items = queue.Queue(maxsize=capacity)
    outputs = [[] for _ in range(consumers)]

    def produce(source):
        for item in source:
            items.put(item)

    def consume(output):
        for item in iter(items.get, done):
            output.append(work(item))

    producers = [threading.Thread(target=produce, args=(s,), name=f"producer-{n}") for n, s in enumerate(sources)]
    workers = [threading.Thread(target=consume, args=(out,), name=f"consumer-{n}") for n, out in enumerate(outputs)]
    for thread in producers + workers:
        thread.start()
    for thread in producers:
        thread.join()
    for _ in workers:
        items.put(done)
    for thread in workers:
        thread.join()
    return [result for output in outputs for result in output]
