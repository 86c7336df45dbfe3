"""Runs that start themselves: schedules, triggers, and the scheduler loop that fires them.

State lives in the store (``schedules/``, ``triggers/``, ``leases/``), so any machine that
reads the store can run the loop, and two loops on one store fire each due time once.
"""
