"""Running a sweep: storage layout, resource planning, the Tune trial function,
the driver-side callbacks, starting/resuming the Tune experiment, and reading
its results."""
