"""The SEG codec's first-call costs are paid at start: what stalled the first inference is loaded by the warm-up."""

from __future__ import annotations

import subprocess
import sys


def test_warm_up_loads_highdicoms_module_table_that_stalled_the_first_inference() -> None:
    # a fresh interpreter: the test process may have loaded highdicom's table already
    script = (
        "import sys\n"
        "from awesomme.runtime.warm_up import warm_up_seg_codec\n"
        "assert 'highdicom._modules' not in sys.modules\n"
        "warm_up_seg_codec()\n"
        "print('highdicom._modules' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "True"
