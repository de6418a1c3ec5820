"""Running task runs on a Dask cluster, inside the project's environment image.

``aeromancy run --cluster tcp://HOST:PORT`` keeps the gates, the image, the plan, the
up-to-date check and the summary where they are (the tracked run's container); only
each task run that must run fresh goes to the cluster, as a reference (task, config,
input versions, store URL, identity). A worker runs it as the same child-process task
run a local run uses and publishes its outputs and record itself.

Modules: address (``tcp://HOST:PORT``, reachability), work (what travels, and the
function a worker runs), fit (does a worker run our environment and see our store),
backend (the executor's Backend on a Dask client), session (connect and check),
containers (``aeromancy cluster up/down``), resources (worker resources a task needs),
cancel (stopping a running task run when its future is cancelled).
"""
