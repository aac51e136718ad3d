-- Loaded by busted before the specs: makes the checkout importable.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
