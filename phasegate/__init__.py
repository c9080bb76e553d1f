"""phasegate: the command-line shell and the local stack around the four parts."""
