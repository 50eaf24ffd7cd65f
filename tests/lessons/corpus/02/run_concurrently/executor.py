# expect: full
# why: a ThreadPoolExecutor with one worker per task runs them all at once; result() re-raises
def run_concurrently(tasks):
    """Run each (function, args) of `tasks` in its own thread, all at once;
    return their results in the order of `tasks`."""
    import concurrent.futures
    tasks = list(tasks)
    if not tasks:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="task") as pool:
        futures = [pool.submit(function, *args) for function, args in tasks]
        concurrent.futures.wait(futures)
    return [future.result() for future in futures]
