"""facebehavior.metrics"""
