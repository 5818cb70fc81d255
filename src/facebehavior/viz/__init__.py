"""facebehavior.viz"""
