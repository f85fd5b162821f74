--[[
testlib.lua - the old name of the test harness, now scripts/mqlua/test.lua
(`require "mqlua.test"`, run by `mqlua test`). Kept so that a test file
written for it (`local T = require "testlib"` ... `T.done()`) still runs,
under `mqlua test` (where T.done() does nothing) or alone.
]]
return require "mqlua.test"
