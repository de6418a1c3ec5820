"""Running a plan: the executor, one task run, the backend that runs it, the child runtime.

This package imports nothing on purpose: a task's child process imports
``aeromancy.execution.child`` through it, and the child may use the standard library only.
"""
