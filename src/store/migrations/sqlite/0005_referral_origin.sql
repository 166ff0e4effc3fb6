-- Referrals remember the BaRS message they arrived in (MessageHeader id, source
-- endpoint, sender, the sender's id for the ServiceRequest), so a decision can be
-- answered the BaRS way. JSON; NULL for referrals that came another way.
ALTER TABLE referrals ADD COLUMN origin TEXT;
