"""The development network harness: topologies, provisioning a state directory (development PKI,
SoftHSM tokens, node configurations), running node processes under a supervisor, and operators' IC
cards. Tests, demos, benchmarks and ``jukinet up`` use it; a production deployment provisions nodes
from its own PKI and HSMs and runs ``jukinet node run`` under its own service manager."""
