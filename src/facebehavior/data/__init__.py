"""facebehavior.data"""
