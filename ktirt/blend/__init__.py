"""The blend: its members' predictions of every response (members.py), DKT, the recurrent member (dkt_run.py), and
the stacker fitted on validation students (stacker.py)."""
