"""vnetc: a compiler for Linux virtual networking."""
