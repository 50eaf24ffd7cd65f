# expect: full
# why: take one lock, try the other without blocking, and on failure let go of both and retry
#   (the lesson's Fix 2; it lost points when a search chose the backing-off thread again after every
#   sleep while the other never ran: explore is now fair to a thread that gives way)
def transfer(source, target, amount):
    """Move amount from source to target, holding both locks; True if it moved."""
    if type(amount) is not int or amount <= 0:
        raise ValueError(f"amount must be a positive int, not {amount!r}")
    if source is target:
        raise ValueError("cannot transfer from an account to itself")
    while True:
        with source.lock:
            if target.lock.acquire(blocking=False):
                try:
                    if source.balance < amount:
                        return False
                    source.balance -= amount
                    target.balance += amount
                    return True
                finally:
                    target.lock.release()
        time.sleep(0.0005)  # back off with no lock held, so the other side can finish
