"""facebehavior.train"""
