"""runtime/recording"""
