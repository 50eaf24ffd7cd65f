import sys
from pathlib import Path

# tests/ helpers (submissions.py) are imported by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
