# expect: full
# why: a ThreadPoolExecutor with one worker a call, its futures in order, and concurrent.futures.wait for one deadline
import concurrent.futures

def run_in_threads(fn, args_list, timeout=10.0):
    """Call fn(*args) for each args in args_list, each call in its own thread."""
    if not args_list:
        return []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(args_list), thread_name_prefix="run_in_threads")
    try:
        futures = [pool.submit(fn, *args) for args in args_list]
        done, not_done = concurrent.futures.wait(futures, timeout=timeout)
        if not_done:
            raise TimeoutError(f"{len(not_done)} call(s) still running after {timeout} s")
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False)
