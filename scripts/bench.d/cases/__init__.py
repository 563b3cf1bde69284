"""One module per benchmark case, each a `measure` (handshakes: `sequential`,
`concurrent`) that writes its entries and ratios into the run's `Bench`."""
