"""What every run stands on, whatever it runs: run folders (``rundir``) and their files (``runkit``: names,
schedules, metrics), atomic writes (``files``), stop signals (``interrupt``), devices and memory (``devices``),
processes (``distributed``), datasets (``data``) and step timing (``profiling``). Nothing here knows a search or a
network."""
