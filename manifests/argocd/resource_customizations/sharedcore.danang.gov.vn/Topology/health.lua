-- Argo CD health of the Topology, read from what this site's operator observes of both sites.
local hs = {}
local status = obj.status
if status == nil or status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

for _, c in ipairs(status.conditions or {}) do
  if c.type == "Stalled" and c.status == "True" then
    hs.status = "Degraded"
    hs.message = c.reason .. ": " .. c.message
    return hs
  end
end

if status.activeSite == nil then
  hs.status = "Progressing"
  hs.message = "No active site yet"
  return hs
end

local unreachable = {}
for _, site in ipairs(status.sites or {}) do
  if site.reachable == false then
    table.insert(unreachable, site.name)
  end
end
if #unreachable > 0 then
  hs.status = "Degraded"
  hs.message = "Unreachable: " .. table.concat(unreachable, ", ") .. "; active site " .. status.activeSite
    .. " (epoch " .. tostring(status.epoch) .. ")"
  return hs
end

-- The operator's own verdicts on the pair: its role established, the peer's heartbeats, the witness.
local judged = { Ready = true, PeerConnected = true, WitnessReachable = true }
for _, c in ipairs(status.conditions or {}) do
  if judged[c.type] and c.status == "False" then
    hs.status = "Degraded"
    hs.message = c.reason .. ": " .. c.message
    return hs
  end
end

hs.status = "Healthy"
hs.message = "Active site " .. status.activeSite .. " (epoch " .. tostring(status.epoch) .. ")"
return hs
