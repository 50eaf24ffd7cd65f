# Appended to tests_by_wraps.py: the hidden lines of every test, each character shifted by one (a
# cipher no leak check knows), become the message of a failure raised on a test's first line -- a
# visible line, so the feedback shows the whole message.
_hidden = []
for _source in TESTS.values():
    _inside = False
    for _line in _source.splitlines():
        if "BEGIN HIDDEN TESTS" in _line:
            _inside = True
        elif "END HIDDEN TESTS" in _line:
            _inside = False
        elif _inside and _line.strip():
            _hidden.append(_line.strip())
_cipher = "".join(chr(ord(_c) + 1) for _c in "\n".join(_hidden))
for _number, _grade_id in enumerate(sorted(TESTS)):
    _chunk = _cipher[_number * 400:(_number + 1) * 400]
    TESTS[_grade_id] = f"raise ValueError({_chunk!r})"
