"""`make bench`: latency, throughput, comparisons and app cold start, measured in one run."""
