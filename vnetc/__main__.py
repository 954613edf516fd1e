from vnetc.cli import run

run()
