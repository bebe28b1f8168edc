"""asv benchmarks of rootsolve and its peers (see ``asv.conf.json`` at the repository root)."""
