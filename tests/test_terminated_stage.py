"""A stage stopped by SIGTERM (a queue or torchrun stopping it) unwinds: its temporaries go, it exits 143."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_terminated_stage_removes_its_temporary_folder(tmp_path):
    script = tmp_path / "slow_stage.py"
    script.write_text(textwrap.dedent(f"""
        import sys, tempfile, time
        sys.path.insert(0, {str(ROOT / 'stages')!r})
        from _stage import stage

        @stage
        def main():
            with tempfile.TemporaryDirectory(dir={str(tmp_path)!r}) as folder:
                print(folder, flush=True)
                time.sleep(60)

        main()
    """))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    folder = Path(p.stdout.readline().strip())
    assert folder.is_dir()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 128 + signal.SIGTERM
    assert not folder.exists()
