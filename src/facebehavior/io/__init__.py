"""facebehavior.io"""
