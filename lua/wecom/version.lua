-- The SDK's version, in one place (the C core's WECOM_CORE_VERSION must match;
-- a spec checks it).
return "0.1.0"
