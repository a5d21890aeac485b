"""The prior study: was there a better embedded prior to ship? (research/README.md)"""
