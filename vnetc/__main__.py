from vnetc.cli import main

main()
