# A solution cell. Reaches the IPython shell with no private name read off a foreign object: a
# library class's __init__ (a "special method", readable on anything) run on an object of its own
# class leaves sys.stderr -- ipykernel's OutStream -- in a private attribute of that object; from the
# stream, public traitlets API (trait_values) gives the shell, and shell.ex runs code no policy reads.
import threading


class Borrowed:
    """threading.Thread.__init__ run on me: my own _stderr is now the kernel's output stream."""

    def __init__(self):
        threading.Thread.__init__(self)

    def stream(self):
        return self._stderr


def the_shell():
    return Borrowed().stream().session.parent.trait_values()["shell"]


the_shell().ex(PAYLOAD)
