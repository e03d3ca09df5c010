"""``python -m nasbench_pc.runtime.torchrun ARGS``: torchrun (``torch.distributed.run``) as a cluster job starts a
search of several processes.

The one difference: this launcher ignores SIGUSR2. Slurm sends its warning before a time limit or a preemption to
every process of the job step; torchrun's agent has no handler for it, and USR2's default action would kill the
agent, orphaning its workers half-way through their checkpoint. Ignored here, the warning reaches the workers
alone (each installs its own handler, which replaces the inherited "ignore"): they finish the step, write the
checkpoint together and exit, and the agent ends after them. SIGTERM keeps torchrun's own handling (it passes
SIGTERM on to the workers, which then stop the same way).
"""

from __future__ import annotations

import signal

if __name__ == "__main__":
    from torch.distributed.run import main

    if hasattr(signal, "SIGUSR2"):
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    main()
