"""Hospital information (hours, address and transport, parking, visiting, phone, where a department
is): the hospital's own answers, edited by staff, seeded from `hospital_info.yml`."""
