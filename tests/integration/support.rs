//! A small harness: write files into a temp project, run devgraph, compare output exactly.
