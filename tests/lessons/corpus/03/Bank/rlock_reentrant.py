# expect: full
# why: one RLock; transfer calls withdraw and deposit while holding it, so both happen as one step
class Bank:
    """Balances of named accounts; every method is safe to call from many threads."""

    def __init__(self, balances):
        self._balances = dict(balances)
        self._lock = threading.RLock()

    @staticmethod
    def _check(amount):
        if type(amount) is not int or amount <= 0:
            raise ValueError(f"amount must be a positive int, not {amount!r}")

    def deposit(self, name, amount):
        """Add amount (a positive int) to name's balance."""
        self._check(amount)
        with self._lock:
            self._balances[name] = self._balances[name] + amount

    def withdraw(self, name, amount):
        """Take amount out and return True, or return False if the balance is too small."""
        self._check(amount)
        with self._lock:
            if self._balances[name] < amount:
                return False
            self._balances[name] -= amount
            return True

    def transfer(self, source, target, amount):
        """Move amount from source to target (all or nothing); True if it moved."""
        self._check(amount)
        with self._lock:
            if target not in self._balances:
                raise KeyError(target)
            if not self.withdraw(source, amount):
                return False
            self.deposit(target, amount)
            return True

    def balance(self, name):
        """The balance of name."""
        with self._lock:
            return self._balances[name]

    def total(self):
        """The sum of all balances."""
        with self._lock:
            return sum(self._balances.values())
